DROP TABLE undo;
DROP TABLE blocks;
DROP TABLE checkpoint;
DROP TABLE meta;
