-- A settlement's visit is looked up from the console's detail page only (the
-- visit's other settlements: a reversal and its original). That page now
-- finds them through the person's ledger chain (ledger_txns by chain, then
-- settlements by primary key): a few rows per person, read once per view,
-- instead of an index entry written by every settlement (issue #3: settle
-- throughput).
DROP INDEX IF EXISTS settlements_by_visit;
