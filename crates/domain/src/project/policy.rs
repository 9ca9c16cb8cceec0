//! The one authorization policy: for every action on or in a project, the
//! least project role that may take it. Every use case asks [`authorize`];
//! the HTTP layer never decides. An action without a rule is denied (the
//! table is checked to cover every [`Action`]).
//!
//! A caller who is not a member learns nothing: every action answers
//! [`Denied::NotFound`], exactly as for a project that does not exist. A
//! member whose role is too low gets [`Denied::Forbidden`].

use std::fmt::Write as _;

use crate::project::ProjectRole;

/// Everything a caller can do on or in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ViewProject,
    EditProject,
    ArchiveProject,
    DeleteProject,
    TransferProject,
    ViewMembers,
    AddMember,
    ChangeMemberRole,
    RemoveMember,
    LeaveProject,
    ViewTasks,
    CreateTask,
    EditTask,
    DeleteTask,
    ViewActivity,
}

impl Action {
    pub const ALL: [Action; 15] = [
        Action::ViewProject,
        Action::EditProject,
        Action::ArchiveProject,
        Action::DeleteProject,
        Action::TransferProject,
        Action::ViewMembers,
        Action::AddMember,
        Action::ChangeMemberRole,
        Action::RemoveMember,
        Action::LeaveProject,
        Action::ViewTasks,
        Action::CreateTask,
        Action::EditTask,
        Action::DeleteTask,
        Action::ViewActivity,
    ];

    /// What the action is, for people (the rendered policy table).
    pub fn describe(self) -> &'static str {
        match self {
            Action::ViewProject => "see the project",
            Action::EditProject => "rename the project, change its description",
            Action::ArchiveProject => "archive or unarchive the project",
            Action::DeleteProject => "delete the project and its tasks",
            Action::TransferProject => "transfer ownership to another member",
            Action::ViewMembers => "list the members",
            Action::AddMember => "add a member (as admin, member or viewer)",
            Action::ChangeMemberRole => "change a member's role (below owner)",
            Action::RemoveMember => "remove a member (below owner)",
            Action::LeaveProject => "leave the project (the owner must transfer first)",
            Action::ViewTasks => "read the project's tasks",
            Action::CreateTask => "create tasks, move tasks in",
            Action::EditTask => "change tasks, move tasks out",
            Action::DeleteTask => "delete tasks",
            Action::ViewActivity => "read the project's activity (audit trail)",
        }
    }
}

/// The policy: each action and the least role that may take it. Roles are
/// ordered `viewer < member < admin < owner`; a higher role may do what a
/// lower one may.
pub const POLICY: &[(Action, ProjectRole)] = &[
    (Action::ViewProject, ProjectRole::Viewer),
    (Action::ViewMembers, ProjectRole::Viewer),
    (Action::ViewTasks, ProjectRole::Viewer),
    (Action::ViewActivity, ProjectRole::Viewer),
    (Action::LeaveProject, ProjectRole::Viewer),
    (Action::CreateTask, ProjectRole::Member),
    (Action::EditTask, ProjectRole::Member),
    (Action::DeleteTask, ProjectRole::Member),
    (Action::EditProject, ProjectRole::Admin),
    (Action::AddMember, ProjectRole::Admin),
    (Action::ChangeMemberRole, ProjectRole::Admin),
    (Action::RemoveMember, ProjectRole::Admin),
    (Action::ArchiveProject, ProjectRole::Owner),
    (Action::DeleteProject, ProjectRole::Owner),
    (Action::TransferProject, ProjectRole::Owner),
];

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Not a member: the project (and anything in it) does not exist for
    /// the caller.
    NotFound,
    /// A member whose role is too low.
    Forbidden,
}

/// The least role that may take `action`; `None` when the policy has no
/// rule for it (then nobody may).
pub fn least_role(action: Action) -> Option<ProjectRole> {
    POLICY
        .iter()
        .find(|(ruled, _)| *ruled == action)
        .map(|(_, role)| *role)
}

/// Whether a caller with `role` in a project (`None`: not a member) may
/// take `action` there.
pub fn authorize(role: Option<ProjectRole>, action: Action) -> Result<(), Denied> {
    let role = role.ok_or(Denied::NotFound)?;
    match least_role(action) {
        Some(least) if role >= least => Ok(()),
        _ => Err(Denied::Forbidden),
    }
}

/// The policy as a Markdown table (actions by role), generated from
/// [`POLICY`] for the documentation.
pub fn markdown_table() -> String {
    let roles = ProjectRole::ALL;
    let mut table = String::from("| action |");
    for role in roles {
        let _ = write!(table, " {} |", role.as_str());
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(roles.len()));
    for action in Action::ALL {
        let _ = write!(table, "\n| {} |", action.describe());
        for role in roles {
            let mark = if authorize(Some(role), action).is_ok() {
                " yes |"
            } else {
                " no |"
            };
            table.push_str(mark);
        }
    }
    table.push('\n');
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_exactly_one_rule() {
        for action in Action::ALL {
            let rules = POLICY.iter().filter(|(ruled, _)| *ruled == action).count();
            assert_eq!(rules, 1, "{action:?}");
        }
        assert_eq!(POLICY.len(), Action::ALL.len());
    }

    #[test]
    fn a_non_member_is_told_nothing_exists() {
        for action in Action::ALL {
            assert_eq!(authorize(None, action), Err(Denied::NotFound), "{action:?}");
        }
    }

    #[test]
    fn roles_as_the_issue_states_them() {
        use ProjectRole::*;
        let may = |role, action| authorize(Some(role), action).is_ok();
        // viewer: reads the project, its members, tasks and activity.
        for action in [
            Action::ViewProject,
            Action::ViewMembers,
            Action::ViewTasks,
            Action::ViewActivity,
        ] {
            assert!(may(Viewer, action), "{action:?}");
        }
        assert!(!may(Viewer, Action::CreateTask));
        // member: also creates, edits and deletes tasks.
        for action in [Action::CreateTask, Action::EditTask, Action::DeleteTask] {
            assert!(may(Member, action), "{action:?}");
        }
        assert!(!may(Member, Action::EditProject));
        assert!(!may(Member, Action::AddMember));
        // admin: also edits the project and manages members below owner.
        for action in [
            Action::EditProject,
            Action::AddMember,
            Action::ChangeMemberRole,
            Action::RemoveMember,
        ] {
            assert!(may(Admin, action), "{action:?}");
        }
        // owner: also archives, deletes and transfers.
        for action in [
            Action::ArchiveProject,
            Action::DeleteProject,
            Action::TransferProject,
        ] {
            assert!(!may(Admin, action), "{action:?}");
            assert!(may(Owner, action), "{action:?}");
        }
        assert_eq!(
            authorize(Some(Member), Action::DeleteProject),
            Err(Denied::Forbidden)
        );
    }

    #[test]
    fn a_higher_role_may_do_what_a_lower_one_may() {
        for action in Action::ALL {
            for (lower, higher) in ProjectRole::ALL.iter().zip(ProjectRole::ALL.iter().skip(1)) {
                if authorize(Some(*lower), action).is_ok() {
                    assert!(authorize(Some(*higher), action).is_ok(), "{action:?}");
                }
            }
        }
    }

    /// ARCHITECTURE.md shows [`markdown_table`] between two markers; this
    /// fails when they differ. `TASKFLOW_BLESS=1` rewrites the file instead.
    #[test]
    fn the_documented_policy_is_the_policy() {
        const START: &str =
            "<!-- policy:start (generated by domain::project::policy::markdown_table) -->\n";
        const END: &str = "<!-- policy:end -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ARCHITECTURE.md");
        let doc = std::fs::read_to_string(path).expect("read ARCHITECTURE.md");
        let (Some(start), Some(end)) = (doc.find(START), doc.find(END)) else {
            panic!("ARCHITECTURE.md lacks the policy markers");
        };
        let shown = &doc[start + START.len()..end];
        let table = markdown_table();
        if shown != table {
            if std::env::var_os("TASKFLOW_BLESS").is_some() {
                let updated = format!("{}{table}{}", &doc[..start + START.len()], &doc[end..]);
                std::fs::write(path, updated).expect("write ARCHITECTURE.md");
            } else {
                panic!(
                    "ARCHITECTURE.md's policy table is stale; run \
                     TASKFLOW_BLESS=1 cargo test -p domain --lib policy\n{table}"
                );
            }
        }
    }

    #[test]
    fn the_rendered_table_has_a_row_per_action_and_a_column_per_role() {
        let table = markdown_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2 + Action::ALL.len());
        assert_eq!(lines[0], "| action | viewer | member | admin | owner |");
        assert!(lines.contains(&"| delete tasks | no | yes | yes | yes |"));
        assert!(lines.contains(&"| delete the project and its tasks | no | no | no | yes |"));
    }
}
