// The tables as diesel sees them; private to this crate. Keep in step with
// migrations/ (the contract tests fail when they drift).

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
        disabled -> Bool,
    }
}

diesel::table! {
    tasks (id) {
        id -> Uuid,
        project_id -> Uuid,
        created_by -> Uuid,
        assignee_id -> Nullable<Uuid>,
        title -> Text,
        description -> Nullable<Text>,
        status -> Text,
        priority -> SmallInt,
        due_date -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        version -> BigInt,
    }
}

diesel::table! {
    projects (id) {
        id -> Uuid,
        name -> Text,
        name_key -> Text,
        description -> Nullable<Text>,
        archived -> Bool,
        personal -> Bool,
        owner_id -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> BigInt,
        event_seq -> BigInt,
    }
}

diesel::table! {
    project_members (project_id, user_id) {
        project_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        joined_at -> Timestamptz,
    }
}

diesel::table! {
    audit_entries (id) {
        id -> Uuid,
        at -> Timestamptz,
        actor_id -> Uuid,
        action -> Text,
        entity_type -> Text,
        entity_id -> Uuid,
        project_id -> Nullable<Uuid>,
        changes -> Jsonb,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    events (project_id, seq) {
        project_id -> Uuid,
        seq -> BigInt,
        #[sql_name = "type"]
        kind -> Text,
        entity_id -> Uuid,
        actor_id -> Uuid,
        at -> Timestamptz,
        data -> Nullable<Jsonb>,
        changes -> Array<Text>,
        request_id -> Nullable<Text>,
        client_mutation_id -> Nullable<Text>,
    }
}

diesel::joinable!(tasks -> projects (project_id));
diesel::joinable!(project_members -> projects (project_id));
diesel::joinable!(project_members -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    tasks,
    projects,
    project_members,
    audit_entries,
    events
);
