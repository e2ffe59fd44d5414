-- The distribution key (PostgreSQL). Numbered in step with
-- crates/store-sqlite/migrations/0002_distribution_key.sql (nothing to do there: one file, one node).
--
-- Every per-patient table gets a non-null `shard_key` that decides where a row lives when the
-- tables are hash-partitioned over several servers (`tsunagu shard init`, docs/scale-out.md) or
-- distributed by Citus:
--
-- * A resource's *home key* is the first Patient compartment it belongs to, or `Type/id` for a
--   resource outside every patient compartment (so that those spread evenly too). `resource` and
--   `resource_version` rows carry the home key: the body lives on the home shard.
-- * Index rows are written once for *every* patient compartment the resource belongs to (once, under
--   `Type/id`, when it belongs to none). So every index row a search within one patient's
--   compartment needs lives on that patient's shard, and the search touches that shard alone.
--   Searches across patients see a multi-patient resource's entries once per patient; they select
--   `r.pk IN (...)`, which counts each resource once.
-- * `compartment` rows are placed by their own `patient_id`.
--
-- Distribution keys are only ever compared for equality, never sorted, so they use the database's
-- default collation rather than "C": postgres_fdw sends a comparison to a shard only when no
-- explicit collation is involved, and a key that stays on the coordinator would read whole shards.
--
-- Unique constraints and primary keys of per-patient tables include the distribution key (as both
-- partitioning and Citus require), and the foreign keys to `resource` go: a shard cannot check them.
-- The writer keeps both facts (crates/store-postgres/src/write.rs): one logical resource has one
-- `resource` row, locked by every write of it.

ALTER TABLE resource RENAME COLUMN patient TO shard_key;
UPDATE resource SET shard_key = type || '/' || id WHERE shard_key IS NULL;
ALTER TABLE resource ALTER COLUMN shard_key SET NOT NULL;
ALTER TABLE resource ALTER COLUMN shard_key TYPE text COLLATE "default";

ALTER TABLE resource_version RENAME COLUMN patient TO shard_key;
UPDATE resource_version SET shard_key = type || '/' || id WHERE shard_key IS NULL;
ALTER TABLE resource_version ALTER COLUMN shard_key SET NOT NULL;
ALTER TABLE resource_version ALTER COLUMN shard_key TYPE text COLLATE "default";
ALTER TABLE resource_version DROP CONSTRAINT resource_version_res_fkey;
ALTER TABLE resource_version DROP CONSTRAINT resource_version_res_version_key;
ALTER TABLE resource_version DROP CONSTRAINT resource_version_pkey;
ALTER TABLE resource_version ADD PRIMARY KEY (seq, shard_key);
CREATE INDEX resource_version_by_res ON resource_version (res, version);

ALTER TABLE compartment DROP CONSTRAINT compartment_res_fkey;
ALTER TABLE compartment ALTER COLUMN patient_id TYPE text COLLATE "default";

ALTER TABLE idx_token RENAME COLUMN patient TO shard_key;
UPDATE idx_token i SET shard_key = r.shard_key FROM resource r WHERE r.pk = i.res AND i.shard_key IS NULL;
INSERT INTO idx_token (res, ord, pid, shard_key, system, code, text)
    SELECT i.res, i.ord, i.pid, c.patient_id, i.system, i.code, i.text
    FROM idx_token i JOIN compartment c ON c.res = i.res AND c.patient_id <> i.shard_key;
ALTER TABLE idx_token ALTER COLUMN shard_key SET NOT NULL;
ALTER TABLE idx_token ALTER COLUMN shard_key TYPE text COLLATE "default";
ALTER TABLE idx_token DROP CONSTRAINT idx_token_pkey;
ALTER TABLE idx_token ADD PRIMARY KEY (res, ord, shard_key);

ALTER TABLE idx_string RENAME COLUMN patient TO shard_key;
UPDATE idx_string i SET shard_key = r.shard_key FROM resource r WHERE r.pk = i.res AND i.shard_key IS NULL;
INSERT INTO idx_string (res, ord, pid, shard_key, normalized, exact)
    SELECT i.res, i.ord, i.pid, c.patient_id, i.normalized, i.exact
    FROM idx_string i JOIN compartment c ON c.res = i.res AND c.patient_id <> i.shard_key;
ALTER TABLE idx_string ALTER COLUMN shard_key SET NOT NULL;
ALTER TABLE idx_string ALTER COLUMN shard_key TYPE text COLLATE "default";
ALTER TABLE idx_string DROP CONSTRAINT idx_string_pkey;
ALTER TABLE idx_string ADD PRIMARY KEY (res, ord, shard_key);

ALTER TABLE idx_date RENAME COLUMN patient TO shard_key;
UPDATE idx_date i SET shard_key = r.shard_key FROM resource r WHERE r.pk = i.res AND i.shard_key IS NULL;
INSERT INTO idx_date (res, ord, pid, shard_key, low, high)
    SELECT i.res, i.ord, i.pid, c.patient_id, i.low, i.high
    FROM idx_date i JOIN compartment c ON c.res = i.res AND c.patient_id <> i.shard_key;
ALTER TABLE idx_date ALTER COLUMN shard_key SET NOT NULL;
ALTER TABLE idx_date ALTER COLUMN shard_key TYPE text COLLATE "default";
ALTER TABLE idx_date DROP CONSTRAINT idx_date_pkey;
ALTER TABLE idx_date ADD PRIMARY KEY (res, ord, shard_key);

ALTER TABLE idx_reference RENAME COLUMN patient TO shard_key;
UPDATE idx_reference i SET shard_key = r.shard_key FROM resource r WHERE r.pk = i.res AND i.shard_key IS NULL;
INSERT INTO idx_reference (res, ord, pid, shard_key, target_type, target_id, url)
    SELECT i.res, i.ord, i.pid, c.patient_id, i.target_type, i.target_id, i.url
    FROM idx_reference i JOIN compartment c ON c.res = i.res AND c.patient_id <> i.shard_key;
ALTER TABLE idx_reference ALTER COLUMN shard_key SET NOT NULL;
ALTER TABLE idx_reference ALTER COLUMN shard_key TYPE text COLLATE "default";
ALTER TABLE idx_reference DROP CONSTRAINT idx_reference_pkey;
ALTER TABLE idx_reference ADD PRIMARY KEY (res, ord, shard_key);

ALTER TABLE idx_quantity RENAME COLUMN patient TO shard_key;
UPDATE idx_quantity i SET shard_key = r.shard_key FROM resource r WHERE r.pk = i.res AND i.shard_key IS NULL;
INSERT INTO idx_quantity (res, ord, pid, shard_key, value, system, code, unit)
    SELECT i.res, i.ord, i.pid, c.patient_id, i.value, i.system, i.code, i.unit
    FROM idx_quantity i JOIN compartment c ON c.res = i.res AND c.patient_id <> i.shard_key;
ALTER TABLE idx_quantity ALTER COLUMN shard_key SET NOT NULL;
ALTER TABLE idx_quantity ALTER COLUMN shard_key TYPE text COLLATE "default";
ALTER TABLE idx_quantity DROP CONSTRAINT idx_quantity_pkey;
ALTER TABLE idx_quantity ADD PRIMARY KEY (res, ord, shard_key);

ALTER TABLE idx_number RENAME COLUMN patient TO shard_key;
UPDATE idx_number i SET shard_key = r.shard_key FROM resource r WHERE r.pk = i.res AND i.shard_key IS NULL;
INSERT INTO idx_number (res, ord, pid, shard_key, value)
    SELECT i.res, i.ord, i.pid, c.patient_id, i.value
    FROM idx_number i JOIN compartment c ON c.res = i.res AND c.patient_id <> i.shard_key;
ALTER TABLE idx_number ALTER COLUMN shard_key SET NOT NULL;
ALTER TABLE idx_number ALTER COLUMN shard_key TYPE text COLLATE "default";
ALTER TABLE idx_number DROP CONSTRAINT idx_number_pkey;
ALTER TABLE idx_number ADD PRIMARY KEY (res, ord, shard_key);

ALTER TABLE idx_uri RENAME COLUMN patient TO shard_key;
UPDATE idx_uri i SET shard_key = r.shard_key FROM resource r WHERE r.pk = i.res AND i.shard_key IS NULL;
INSERT INTO idx_uri (res, ord, pid, shard_key, value)
    SELECT i.res, i.ord, i.pid, c.patient_id, i.value
    FROM idx_uri i JOIN compartment c ON c.res = i.res AND c.patient_id <> i.shard_key;
ALTER TABLE idx_uri ALTER COLUMN shard_key SET NOT NULL;
ALTER TABLE idx_uri ALTER COLUMN shard_key TYPE text COLLATE "default";
ALTER TABLE idx_uri DROP CONSTRAINT idx_uri_pkey;
ALTER TABLE idx_uri ADD PRIMARY KEY (res, ord, shard_key);
