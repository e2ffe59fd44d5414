-- Counts of committed writes per resource type (`Store::write_generation`): a caller that keeps
-- something derived from resources of a counted type (the app keeps each patient's consents to an
-- organisation between requests) reads the count on every use and throws what it kept away when
-- the count moved. Triggers keep the counts, so a write by any connection of any process (the
-- server's writer, `tsunagu import`, `tsunagu retention`) moves them in the same transaction, and
-- a rolled-back write does not.
--
-- Only the types listed here are counted: a trigger's update of a type without a row changes
-- nothing. Consent is the one type whose writes every request's decision depends on.

CREATE TABLE write_generation (
    type TEXT    PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO write_generation (type, n) VALUES ('Consent', 0);

CREATE TRIGGER resource_insert_counts AFTER INSERT ON resource
BEGIN
    UPDATE write_generation SET n = n + 1 WHERE type = NEW.type;
END;
CREATE TRIGGER resource_update_counts AFTER UPDATE ON resource
BEGIN
    UPDATE write_generation SET n = n + 1 WHERE type = NEW.type;
END;
CREATE TRIGGER resource_delete_counts AFTER DELETE ON resource
BEGIN
    UPDATE write_generation SET n = n + 1 WHERE type = OLD.type;
END;
