-- Resources, their history, and the search index tables (PostgreSQL). Numbered in step with
-- crates/store-sqlite/migrations/0001_resources.sql; the two schemas hold the same facts.
--
-- Invariants kept by the writer (crates/store-postgres/src/write.rs):
-- * `resource` holds one small row per logical resource (its current version number and state); its
--   `pk` never changes and is the storage order used for keyset paging and `scan`. Its row is locked
--   (`SELECT ... FOR UPDATE`) by every write of that resource, which is what makes If-Match exact.
-- * `resource_version` holds every version, deletes included, each body written once and never
--   updated (unlike SQLite, the current body is not kept in `resource`: an UPDATE of a wide row costs
--   a whole new tuple in PostgreSQL, while the narrow `resource` row can be updated in place (HOT)).
--   `seq` only grows, so it orders history globally.
-- * Index rows and compartment rows exist only for the current version of live resources: they are
--   replaced on update and removed on delete. Any index row therefore names a live resource.
--
-- Text that is compared or sorted uses COLLATE "C": byte order, as SQLite's BINARY, whatever the
-- database's locale, so both backends sort and range-match strings identically.
--
-- Distribution key: every per-patient table carries `patient` (the first Patient compartment the
-- resource belongs to; NULL for resources outside every patient compartment). Nothing is sharded
-- yet; the column is there so the tables can later be hash-partitioned (or distributed by Citus) on
-- the patient without rewriting rows.

CREATE TABLE resource (
    pk           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type         text    COLLATE "C" NOT NULL,
    id           text    COLLATE "C" NOT NULL,
    version      bigint  NOT NULL,
    last_updated bigint  NOT NULL,  -- microseconds since the Unix epoch, UTC
    deleted      boolean NOT NULL,
    patient      text    COLLATE "C",
    UNIQUE (type, id)
);
CREATE INDEX resource_live_by_type ON resource (type, pk) WHERE NOT deleted;
CREATE INDEX resource_by_type_updated ON resource (type, last_updated);

CREATE TABLE resource_version (
    seq          bigint   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    res          bigint   NOT NULL REFERENCES resource (pk),
    type         text     COLLATE "C" NOT NULL,
    id           text     COLLATE "C" NOT NULL,
    version      bigint   NOT NULL,
    last_updated bigint   NOT NULL,
    method       smallint NOT NULL,  -- 0 create, 1 update, 2 delete
    patient      text     COLLATE "C",
    -- The resource JSON exactly as served: `json`, not `jsonb`, because the contract returns the
    -- stored text byte for byte (key order, number spelling), which jsonb does not keep. It is still
    -- validated JSON, and `json::jsonb` gives the jsonb operators to ad hoc queries. NULL for deletes.
    json         json,
    UNIQUE (res, version)
);
CREATE INDEX resource_version_by_type ON resource_version (type, seq);
CREATE INDEX resource_version_by_time ON resource_version (last_updated);

-- Every (resource type, search parameter) pair that has index entries, interned to a small integer.
-- Rows are only ever added, each in its own short transaction (never inside a write), so an id, once
-- seen, exists for good.
CREATE TABLE search_param (
    pid   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type  text    COLLATE "C" NOT NULL,
    param text    COLLATE "C" NOT NULL,
    UNIQUE (type, param)
);

-- Index tables: `(res, ord)` identifies an entry (`ord` is its position in the write); one search
-- index per table serves the predicates, leading with the interned parameter id. No foreign key to
-- `resource`: the writer is their only writer and keeps the invariant above.

CREATE TABLE idx_token (
    res     bigint  NOT NULL,
    ord     integer NOT NULL,
    pid     integer NOT NULL,
    patient text    COLLATE "C",
    system  text    COLLATE "C",
    code    text    COLLATE "C",
    text    text    COLLATE "C",
    PRIMARY KEY (res, ord)
);
CREATE INDEX idx_token_search ON idx_token (pid, code, system);

CREATE TABLE idx_string (
    res        bigint  NOT NULL,
    ord        integer NOT NULL,
    pid        integer NOT NULL,
    patient    text    COLLATE "C",
    normalized text    COLLATE "C" NOT NULL,
    exact      text    COLLATE "C" NOT NULL,
    PRIMARY KEY (res, ord)
);
CREATE INDEX idx_string_search ON idx_string (pid, normalized, exact);

CREATE TABLE idx_date (
    res     bigint  NOT NULL,
    ord     integer NOT NULL,
    pid     integer NOT NULL,
    patient text    COLLATE "C",
    low     bigint  NOT NULL,
    high    bigint  NOT NULL,
    PRIMARY KEY (res, ord)
);
CREATE INDEX idx_date_search ON idx_date (pid, low, high);

CREATE TABLE idx_reference (
    res         bigint  NOT NULL,
    ord         integer NOT NULL,
    pid         integer NOT NULL,
    patient     text    COLLATE "C",
    target_type text    COLLATE "C",
    target_id   text    COLLATE "C",
    url         text    COLLATE "C",
    PRIMARY KEY (res, ord)
);
CREATE INDEX idx_reference_search ON idx_reference (pid, target_id, target_type);
CREATE INDEX idx_reference_url ON idx_reference (pid, url) WHERE url IS NOT NULL;

CREATE TABLE idx_quantity (
    res     bigint  NOT NULL,
    ord     integer NOT NULL,
    pid     integer NOT NULL,
    patient text    COLLATE "C",
    value   double precision,
    system  text    COLLATE "C",
    code    text    COLLATE "C",
    unit    text    COLLATE "C",
    PRIMARY KEY (res, ord)
);
CREATE INDEX idx_quantity_search ON idx_quantity (pid, value);

CREATE TABLE idx_number (
    res     bigint  NOT NULL,
    ord     integer NOT NULL,
    pid     integer NOT NULL,
    patient text    COLLATE "C",
    value   double precision,
    PRIMARY KEY (res, ord)
);
CREATE INDEX idx_number_search ON idx_number (pid, value);

CREATE TABLE idx_uri (
    res     bigint  NOT NULL,
    ord     integer NOT NULL,
    pid     integer NOT NULL,
    patient text    COLLATE "C",
    value   text    COLLATE "C" NOT NULL,
    PRIMARY KEY (res, ord)
);
CREATE INDEX idx_uri_search ON idx_uri (pid, value);

-- Patient compartment membership of live resources (`patient_id` is itself the distribution key).
CREATE TABLE compartment (
    patient_id text   COLLATE "C" NOT NULL,
    res        bigint NOT NULL REFERENCES resource (pk),
    PRIMARY KEY (patient_id, res)
);
CREATE INDEX compartment_by_res ON compartment (res);
