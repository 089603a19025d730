//! OpenAI-shaped errors with the status that says whose fault they are.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use openledger_engine::inference::Error as InferenceError;
use serde_json::json;

/// An OpenAI-shaped error response: 4xx for what the client can fix, 5xx for the node's
/// faults and limits (a paid request that fails with a 5xx is not the user's to pay).
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    param: Option<&'static str>,
    message: String,
}

impl ApiError {
    /// A 400 for a malformed or out-of-range request field.
    pub(crate) fn invalid(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            param,
            message: message.into(),
        }
    }

    /// A 404 for a model name that is not served.
    pub(crate) fn model_not_found(model: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: Some("model_not_found"),
            param: Some("model"),
            message: format!(
                "the model {model:?} does not exist; GET /v1/models lists the served models"
            ),
        }
    }

    /// A paid request refused before any compute (401, 402, 404, 400 or 503).
    pub(crate) fn refused(r: openledger_payments::Refusal) -> Self {
        Self {
            status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::PAYMENT_REQUIRED),
            kind: match r.status {
                401 => "authentication_error",
                402 => "payment_required",
                503 => "server_error",
                _ => "invalid_request_error",
            },
            code: Some(r.code),
            param: None,
            message: r.message,
        }
    }

    /// A 404 for a receipt or batch this node does not have.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: Some("not_found"),
            param: None,
            message: message.into(),
        }
    }

    /// A 404 for an unknown path.
    pub(crate) fn unknown_url() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: Some("unknown_url"),
            param: None,
            message: "unknown endpoint; see /v1/models, /v1/completions, /v1/chat/completions, /v1/receipts/{id}, /v1/batches/{seq}"
                .into(),
        }
    }

    /// A 500 for a fault of the node itself (e.g. a worker that panicked).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(target: "oracle::api", error = %message, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "server_error",
            code: None,
            param: None,
            message,
        }
    }

    /// The JSON body (`{"error": {...}}`), also sent as the last event of a failed stream.
    pub(crate) fn body(&self) -> serde_json::Value {
        json!({ "error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<InferenceError> for ApiError {
    fn from(e: InferenceError) -> Self {
        let message = e.to_string();
        let param = e.param();
        let (status, code) = match &e {
            InferenceError::InvalidParam { .. } => (StatusCode::BAD_REQUEST, None),
            InferenceError::ContextOverflow { .. } => {
                (StatusCode::BAD_REQUEST, Some("context_length_exceeded"))
            }
            InferenceError::UnknownAdapter { .. } => {
                (StatusCode::NOT_FOUND, Some("model_not_found"))
            }
            InferenceError::AdapterUnusable { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some("adapter_unusable"))
            }
            InferenceError::Unsupported { .. } => (StatusCode::BAD_REQUEST, Some("unsupported")),
            InferenceError::Overloaded { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded"))
            }
            InferenceError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, Some("engine_stopped")),
            InferenceError::Inference { .. } => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        debug_assert_eq!(status.is_client_error(), e.is_client_error());
        let kind = if e.is_client_error() {
            "invalid_request_error"
        } else {
            tracing::warn!(target: "oracle::api", error = %message, "request failed");
            "server_error"
        };
        Self {
            status,
            kind,
            code,
            param,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_faults_are_4xx_and_node_faults_5xx_with_the_parameter() {
        let cases = [
            (
                InferenceError::InvalidParam {
                    param: "top_p",
                    reason: "x".into(),
                },
                400,
                Some("top_p"),
            ),
            (
                InferenceError::ContextOverflow {
                    tokens: 9,
                    limit: 8,
                },
                400,
                Some("messages"),
            ),
            (
                InferenceError::UnknownAdapter {
                    adapter: "a".into(),
                },
                404,
                Some("model"),
            ),
            (
                InferenceError::AdapterUnusable {
                    adapter: "a".into(),
                    reason: "r".into(),
                },
                422,
                Some("model"),
            ),
            (InferenceError::Overloaded { queued: 3 }, 503, None),
            (InferenceError::Stopped, 503, None),
            (
                InferenceError::Inference {
                    reason: "boom".into(),
                },
                500,
                None,
            ),
        ];
        for (e, status, param) in cases {
            let client = e.is_client_error();
            let api = ApiError::from(e);
            assert_eq!(api.status.as_u16(), status);
            assert_eq!(api.param, param);
            assert_eq!(api.status.is_client_error(), client);
            let want = if client {
                "invalid_request_error"
            } else {
                "server_error"
            };
            assert_eq!(api.kind, want);
        }
    }
}
