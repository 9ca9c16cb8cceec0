-- The per-project event log (issue 8): every change of a project's content
-- appends one event per changed entity, in the change's transaction.

-- The project's log head: the last seq given (0 before any). A change
-- takes the project's row lock first, then raises the counter by the
-- number of events it appends, so seqs are gapless and in commit order,
-- and a rolled-back change gives its numbers back. Existing projects start
-- with an empty log.
ALTER TABLE projects ADD COLUMN event_seq bigint NOT NULL DEFAULT 0 CHECK (event_seq >= 0);

CREATE TABLE events (
    -- No foreign key: a deleted project's events (`project.deleted` last)
    -- stay until retention prunes them.
    project_id         uuid NOT NULL,
    -- 1, 2, 3, ... per project.
    seq                bigint NOT NULL CHECK (seq >= 1),
    -- EventType::as_str of every EventType::ALL.
    type               text NOT NULL CHECK (type IN (
        'task.created', 'task.updated', 'task.deleted',
        'project.created', 'project.updated', 'project.archived', 'project.unarchived',
        'project.deleted',
        'member.added', 'member.updated', 'member.removed')),
    -- The task's or project's id; a member's user id. No foreign key: the
    -- entity may since have been deleted.
    entity_id          uuid NOT NULL,
    -- Users are never deleted (NO ACTION): an event always names its actor.
    actor_id           uuid NOT NULL REFERENCES users (id),
    at                 timestamptz NOT NULL,
    -- The entity's state after the change in the adapter's own shape
    -- (event.rs): {"v": 1, "task" | "project" | "member": {...}}; NULL for
    -- a deletion. (Which data goes with which type is the domain's
    -- business: the port stores any.)
    data               jsonb CHECK (jsonb_typeof(data) = 'object'),
    -- For updates: the API names of the fields whose values changed.
    changes            text[] NOT NULL CHECK (array_position(changes, NULL) IS NULL),
    -- RequestId and ClientMutationId: 1-64 ASCII letters, digits, '.', '_'
    -- or '-'.
    request_id         text CHECK (request_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    client_mutation_id text CHECK (client_mutation_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    -- Delta sync reads `seq > $after ORDER BY seq LIMIT n`: one range.
    PRIMARY KEY (project_id, seq)
);

-- Retention finds the projects with events older than its cutoff in the
-- range `at < $1` of this index alone (an index-only scan), then prunes
-- each project's oldest events along the primary key (event.rs).
CREATE INDEX events_by_at ON events (at, project_id);
