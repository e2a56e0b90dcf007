-- Room on each page for the new versions of rows that settlements update in
-- place (issue #3): a visit's status, a person's counters of the year, a
-- ledger chain's head. An UPDATE whose new version fits on the row's own page
-- and changes no indexed column is a HOT update: no new index entries. A full
-- page (the default fillfactor of 100, rows inserted densely when visits are
-- registered and persons first settle) sends the new version elsewhere, with
-- an entry in every index of the table; under SERIALIZABLE those entries also
-- land on index pages that concurrent settlements hold read locks on, and
-- about half of the benchmark's serialization failures came from them.
-- CockroachDB accepts fillfactor for PostgreSQL compatibility and ignores it.
ALTER TABLE visits SET (fillfactor = 70);
ALTER TABLE person_counters SET (fillfactor = 70);
ALTER TABLE chain_heads SET (fillfactor = 70);
