-- Resources, their history, and the search index tables.
--
-- Invariants kept by the writer (crates/store-sqlite/src/write.rs):
-- * `resource` holds one row per logical resource (current version); its `pk` never changes and is
--   the storage order used for keyset paging and `scan`.
-- * `resource_version` holds every version, deletes included; `seq` only grows (rows are never
--   deleted), so it orders history globally.
-- * Index rows and compartment rows exist only for the current version of live resources: they are
--   replaced on update and removed on delete. Any index row therefore names a live resource.

CREATE TABLE resource (
    pk           INTEGER PRIMARY KEY,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,  -- microseconds since the Unix epoch, UTC
    deleted      INTEGER NOT NULL,  -- 0 or 1; a deleted resource has `json` = ''
    json         TEXT    NOT NULL,
    UNIQUE (type, id)
);
-- (type, deleted) lists a type's live resources in pk order (an index's entries end with the rowid),
-- which is the default search order; (type, last_updated) serves `_lastUpdated` filters and sorts.
CREATE INDEX resource_by_type ON resource (type, deleted);
CREATE INDEX resource_by_type_updated ON resource (type, last_updated);

CREATE TABLE resource_version (
    seq          INTEGER PRIMARY KEY,
    res          INTEGER NOT NULL REFERENCES resource (pk),
    type         TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    method       INTEGER NOT NULL,  -- 0 create, 1 update, 2 delete
    json         TEXT    NOT NULL,
    UNIQUE (res, version)
);
CREATE INDEX resource_version_by_type ON resource_version (type, seq);

-- Index tables are clustered by (res, ord): a resource's rows sit together, so replacing them is a
-- range delete, and appending a new resource appends at the end of the b-tree. `ord` is the entry's
-- position in the write. One secondary index per table serves the search predicates.

CREATE TABLE idx_token (
    res    INTEGER NOT NULL REFERENCES resource (pk),
    ord    INTEGER NOT NULL,
    type   TEXT    NOT NULL,
    param  TEXT    NOT NULL,
    system TEXT,
    code   TEXT,
    text   TEXT,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_token_search ON idx_token (type, param, code, system);

CREATE TABLE idx_string (
    res        INTEGER NOT NULL REFERENCES resource (pk),
    ord        INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    param      TEXT    NOT NULL,
    normalized TEXT    NOT NULL,
    exact      TEXT    NOT NULL,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_string_search ON idx_string (type, param, normalized, exact);

CREATE TABLE idx_date (
    res   INTEGER NOT NULL REFERENCES resource (pk),
    ord   INTEGER NOT NULL,
    type  TEXT    NOT NULL,
    param TEXT    NOT NULL,
    low   INTEGER NOT NULL,
    high  INTEGER NOT NULL,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_date_search ON idx_date (type, param, low, high);

-- The search index leads with (type, param, target_id): `_has`, `_revinclude` and reference searches
-- always know the source type and parameter, and a bare-id search (`subject=123`) has no type.
CREATE TABLE idx_reference (
    res         INTEGER NOT NULL REFERENCES resource (pk),
    ord         INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    param       TEXT    NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    url         TEXT,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_reference_search ON idx_reference (type, param, target_id, target_type);
CREATE INDEX idx_reference_url ON idx_reference (type, param, url) WHERE url IS NOT NULL;

CREATE TABLE idx_quantity (
    res    INTEGER NOT NULL REFERENCES resource (pk),
    ord    INTEGER NOT NULL,
    type   TEXT    NOT NULL,
    param  TEXT    NOT NULL,
    value  REAL,
    system TEXT,
    code   TEXT,
    unit   TEXT,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_quantity_search ON idx_quantity (type, param, value);

CREATE TABLE idx_number (
    res   INTEGER NOT NULL REFERENCES resource (pk),
    ord   INTEGER NOT NULL,
    type  TEXT    NOT NULL,
    param TEXT    NOT NULL,
    value REAL,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_number_search ON idx_number (type, param, value);

CREATE TABLE idx_uri (
    res   INTEGER NOT NULL REFERENCES resource (pk),
    ord   INTEGER NOT NULL,
    type  TEXT    NOT NULL,
    param TEXT    NOT NULL,
    value TEXT    NOT NULL,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_uri_search ON idx_uri (type, param, value);

-- Patient compartment membership of live resources.
CREATE TABLE compartment (
    patient_id TEXT    NOT NULL,
    res        INTEGER NOT NULL REFERENCES resource (pk),
    PRIMARY KEY (patient_id, res)
) WITHOUT ROWID;
CREATE INDEX compartment_by_res ON compartment (res);
