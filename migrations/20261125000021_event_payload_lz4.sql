-- Large event payloads (rate deck chunks, ~500 KB) are TOASTed; lz4 compresses and reads them
-- several times faster than the default pglz. Small payloads are not compressed either way.
-- Servers built without lz4 keep pglz.
DO $$
BEGIN
    ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available on this server; event payloads stay pglz-compressed';
END $$;
