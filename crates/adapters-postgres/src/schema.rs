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
    }
}

diesel::table! {
    tasks (id) {
        id -> Uuid,
        owner_id -> Uuid,
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

diesel::joinable!(tasks -> users (owner_id));
diesel::allow_tables_to_appear_in_same_query!(users, tasks);
