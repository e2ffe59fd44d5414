-- Counts of committed writes per resource type (`Store::write_generation`): a caller that keeps
-- something derived from resources of a counted type (the app keeps each patient's consents to an
-- organisation between requests) reads the count on every use and throws away what it kept when
-- the count moved.
--
-- The writer (crates/store-sqlite/src/write.rs, `count_write`) adds one in the transaction of every
-- version it writes of a type in `write::COUNTED_TYPES`, whichever process it runs in (the server,
-- `tsunagu import`, `tsunagu retention`): every write of a resource goes through it, and a
-- rolled-back write rolls its count back. The rows here are exactly those types (tested); a type
-- without a row is not counted.

CREATE TABLE write_generation (
    type TEXT    PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO write_generation (type, n) VALUES ('Consent', 0);
