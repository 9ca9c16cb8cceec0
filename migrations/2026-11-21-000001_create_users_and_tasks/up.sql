-- Users and their tasks. The database enforces what the domain promises,
-- so a bug in one instance cannot write a row the others would misread.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    -- Stored normalised (trimmed, lower-cased) by the domain; the unique
    -- index below is on lower(email) so a row written any other way still
    -- cannot duplicate an address.
    email         text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    role          text NOT NULL CHECK (role IN ('user', 'admin')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE tasks (
    id           uuid PRIMARY KEY,
    owner_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description  text CHECK (char_length(description) <= 10000),
    status       text NOT NULL CHECK (status IN ('todo', 'in_progress', 'done')),
    -- 0 low, 1 medium, 2 high, 3 urgent: sorting by priority sorts by urgency.
    priority     smallint NOT NULL CHECK (priority BETWEEN 0 AND 3),
    due_date     timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    completed_at timestamptz,
    version      bigint NOT NULL CHECK (version >= 1),
    -- completedAt is set exactly while the task is done.
    CONSTRAINT tasks_completed_at_matches_status
        CHECK ((status = 'done') = (completed_at IS NOT NULL))
);

-- One index per sort order of GET /tasks. Every list query is
-- `WHERE owner_id = $1 [AND (key, id) > cursor] ORDER BY key, id LIMIT n`,
-- in either direction, so each is one index range scan (forward or
-- backward) whatever the table's size. They also serve lookups by owner.
CREATE INDEX tasks_owner_created_at ON tasks (owner_id, created_at, id);
CREATE INDEX tasks_owner_updated_at ON tasks (owner_id, updated_at, id);
-- ASC NULLS LAST (the default): tasks without a due date come last
-- ascending and first descending, as the API documents.
CREATE INDEX tasks_owner_due_date ON tasks (owner_id, due_date, id);
CREATE INDEX tasks_owner_priority ON tasks (owner_id, priority, id);
