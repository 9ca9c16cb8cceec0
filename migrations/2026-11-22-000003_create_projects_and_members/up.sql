-- Projects and their members (issue 7). Tasks do not belong to projects
-- yet: a later migration moves each into its owner's Inbox.

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- The name as projects are listed by (case-insensitively), computed by
    -- the domain so every store sorts alike; compared by code point (the
    -- "C" collation), as the in-memory store does, whatever the database's
    -- default collation.
    name_key    text COLLATE "C" NOT NULL,
    description text CHECK (char_length(description) <= 2000),
    archived    boolean NOT NULL,
    -- The owner's Inbox: never shared, archived, transferred or deleted.
    personal    boolean NOT NULL,
    owner_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint NOT NULL CHECK (version >= 1),
    CONSTRAINT projects_personal_never_archived CHECK (NOT (personal AND archived))
);

-- One Inbox per user.
CREATE UNIQUE INDEX projects_one_inbox_per_owner ON projects (owner_id) WHERE personal;

CREATE TABLE project_members (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    joined_at  timestamptz NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

-- At most one owner per project (the domain keeps exactly one).
CREATE UNIQUE INDEX project_members_one_owner ON project_members (project_id) WHERE role = 'owner';
-- A user's projects (GET /projects), and the members page of a project in
-- join order (GET /projects/{id}/members) as one index range.
CREATE INDEX project_members_by_user ON project_members (user_id, project_id);
CREATE INDEX project_members_by_join ON project_members (project_id, joined_at, user_id);

-- Every existing user gets an Inbox (registration makes one from now on).
-- PostgreSQL 15 has no UUIDv7 function; these ids are random (v4), which
-- only makes them useless as a time order, and nothing orders by them.
INSERT INTO projects (id, name, name_key, description, archived, personal, owner_id,
                      created_at, updated_at, version)
SELECT gen_random_uuid(), 'Inbox', 'inbox', NULL, false, true, id, created_at, created_at, 1
FROM users;

-- As registration does: the Inbox and its owner's membership date from the
-- account's creation.
INSERT INTO project_members (project_id, user_id, role, joined_at)
SELECT id, owner_id, 'owner', created_at FROM projects WHERE personal;
