-- Version 4: dispatch events name the assignment an `assigned` event announces (a booking
-- announced again after a take-over carries the same id, so repeats can be told apart).
ALTER TABLE {db}.dispatch_events ADD COLUMN IF NOT EXISTS assignment_id String DEFAULT '' AFTER officer_id
