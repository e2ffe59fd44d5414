-- Resources, their history, and the search index tables.
--
-- Invariants kept by the writer (crates/store-sqlite/src/write.rs):
-- * `resource` holds one row per logical resource (current version); its `pk` never changes and is
--   the storage order used for keyset paging and `scan`.
-- * `resource_version` holds every version, deletes included; `seq` only grows (rows are never
--   deleted), so it orders history globally. Its `json` is NULL exactly for current versions.
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
    -- NULL for the current version of its resource, whose body is `resource.json` (a create writes
    -- its JSON once); filled with the old body when the next version is written.
    json         TEXT,
    UNIQUE (res, version)
);
CREATE INDEX resource_version_by_type ON resource_version (type, seq);

-- Every (resource type, search parameter) pair that has index entries, interned to a small integer:
-- index rows and their b-tree keys then carry 1-2 bytes instead of two strings, which keeps the
-- index tables small and their key comparisons cheap. Rows are only ever added.
CREATE TABLE search_param (
    pid   INTEGER PRIMARY KEY,
    type  TEXT NOT NULL,
    param TEXT NOT NULL,
    UNIQUE (type, param)
);

-- Index tables are clustered by (res, ord): a resource's rows sit together, so replacing them is a
-- range delete, and appending a new resource appends at the end of the b-tree. `ord` is the entry's
-- position in the write. One secondary index per table serves the search predicates.
--
-- They carry no foreign key to `resource`: the writer is their only writer and keeps the invariant
-- (rows only for live resources), and skipping the per-row parent lookup makes ingest ~13% faster.

CREATE TABLE idx_token (
    res    INTEGER NOT NULL,
    ord    INTEGER NOT NULL,
    pid    INTEGER NOT NULL,
    system TEXT,
    code   TEXT,
    text   TEXT,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_token_search ON idx_token (pid, code, system);

CREATE TABLE idx_string (
    res        INTEGER NOT NULL,
    ord        INTEGER NOT NULL,
    pid        INTEGER NOT NULL,
    normalized TEXT    NOT NULL,
    exact      TEXT    NOT NULL,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_string_search ON idx_string (pid, normalized, exact);

CREATE TABLE idx_date (
    res  INTEGER NOT NULL,
    ord  INTEGER NOT NULL,
    pid  INTEGER NOT NULL,
    low  INTEGER NOT NULL,
    high INTEGER NOT NULL,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_date_search ON idx_date (pid, low, high);

-- The search index leads with (pid, target_id): `_has`, `_revinclude` and reference searches always
-- know the source type and parameter, and a bare-id search (`subject=123`) has no target type.
CREATE TABLE idx_reference (
    res         INTEGER NOT NULL,
    ord         INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    url         TEXT,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_reference_search ON idx_reference (pid, target_id, target_type);
CREATE INDEX idx_reference_url ON idx_reference (pid, url) WHERE url IS NOT NULL;

CREATE TABLE idx_quantity (
    res    INTEGER NOT NULL,
    ord    INTEGER NOT NULL,
    pid    INTEGER NOT NULL,
    value  REAL,
    system TEXT,
    code   TEXT,
    unit   TEXT,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_quantity_search ON idx_quantity (pid, value);

CREATE TABLE idx_number (
    res   INTEGER NOT NULL,
    ord   INTEGER NOT NULL,
    pid   INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_number_search ON idx_number (pid, value);

CREATE TABLE idx_uri (
    res   INTEGER NOT NULL,
    ord   INTEGER NOT NULL,
    pid   INTEGER NOT NULL,
    value TEXT    NOT NULL,
    PRIMARY KEY (res, ord)
) WITHOUT ROWID;
CREATE INDEX idx_uri_search ON idx_uri (pid, value);

-- Patient compartment membership of live resources.
CREATE TABLE compartment (
    patient_id TEXT    NOT NULL,
    res        INTEGER NOT NULL REFERENCES resource (pk),
    PRIMARY KEY (patient_id, res)
) WITHOUT ROWID;
CREATE INDEX compartment_by_res ON compartment (res);
