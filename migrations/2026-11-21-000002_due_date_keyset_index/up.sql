-- Sorting by due date puts tasks without one last (ascending) or first
-- (descending). Ordering by COALESCE(due_date, 'infinity') makes that one
-- totally ordered key, so a keyset page is a single row-value range
-- `(COALESCE(due_date, 'infinity'), id) > ($1, $2)` on this index, instead
-- of an OR across NULL and non-NULL rows that no index range can serve.
DROP INDEX tasks_owner_due_date;
CREATE INDEX tasks_owner_due_date ON tasks (owner_id, (COALESCE(due_date, 'infinity'::timestamptz)), id);
