-- Cross-province settlement: which side of a settlement this deployment records
-- (local, treatment: treated here and insured elsewhere, insured: the reverse).
ALTER TABLE settlements ADD COLUMN IF NOT EXISTS role TEXT NOT NULL DEFAULT 'local';
