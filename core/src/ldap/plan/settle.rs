//! Mapping users while the source is still being read. A full read spends most of its time
//! waiting for the server: between sending the request for the next page and reading it,
//! the reader maps the users read so far against what the target holds, and the plan maps
//! only the users left. The plan is the same either way; it only comes sooner.

use foldhash::HashMap;

use super::shape::Shape;
use super::{
    Current, Desired, HeldUser, Standing, desired_user, dn_key, held_by_anchor, user_anchor,
};
use crate::ldap::config::{ServerKind, SyncConfig};
use crate::ldap::source::{Entry, source_attributes};
use crate::scim::schema::SchemaRegistry;
use crate::scim::service::resource::Input;

/// Users settled before the plan, by their index in the snapshot's users: `None` for one
/// the plan maps itself.
#[derive(Default)]
pub(crate) struct Settled(pub(super) Vec<Option<Early>>);

impl Settled {
    /// How many users are settled.
    pub(super) fn count(&self) -> usize {
        self.0.iter().filter(|e| e.is_some()).count()
    }
}

/// Where a user settled before the plan stands. What it borrows from its entry (anchor,
/// DN) is taken again from the entry; a user the target holds otherwise is left to the
/// plan, which compares it with what the target holds. Small: a read settles a hundred
/// thousand.
pub(super) enum Early {
    /// Held by the target as the source wants it.
    Unchanged { user_name: String, active: bool },
    /// Not held by the target: the user to create.
    New(Box<Input>),
    /// The entry cannot be mapped: why.
    Problem(String),
}

impl Early {
    /// The user as the plan takes it, from the entry it was settled from.
    pub(super) fn into_desired<'a>(
        self,
        config: &SyncConfig,
        entry: &'a Entry,
    ) -> Result<Desired<'a>, String> {
        let (input, standing) = match self {
            Self::Unchanged { user_name, active } => (
                Input {
                    name: user_name,
                    active,
                    ..Input::default()
                },
                Standing::Unchanged,
            ),
            Self::New(input) => (*input, Standing::New),
            Self::Problem(why) => return Err(why),
        };
        Ok(Desired {
            anchor: user_anchor(&config.users, entry)?,
            dn: &entry.dn,
            dn_key: dn_key(&entry.dn),
            input,
            standing,
        })
    }
}

/// Maps the users of a full read as the read hands them over, once the target's users are
/// known (`target` says when: the target is read at the same time).
pub(crate) struct Settler<'c> {
    config: &'c SyncConfig,
    registry: SchemaRegistry,
    shape: Option<Shape>,
    target: &'c dyn Fn() -> Option<&'c Current>,
    held: Option<HashMap<&'c str, &'c HeldUser>>,
    settled: Vec<Option<Early>>,
    /// Users mapped at most per call: the call is made while the server prepares the next
    /// page and must not hold the read up, so about a page, and as much again to catch up
    /// with the users read before the target was known.
    per_call: usize,
    enabled: bool,
}

impl<'c> Settler<'c> {
    /// A settler for `config`'s users. It settles nothing when an entry may still change
    /// after its search: Active Directory's `memberOf` comes in ranges read at the end,
    /// so a mapping that reads `memberOf` waits for the plan.
    pub(crate) fn new(config: &'c SyncConfig, target: &'c dyn Fn() -> Option<&'c Current>) -> Self {
        let users = &config.users;
        let reads_member_of = users
            .attributes
            .iter()
            .map(|(_, source)| source)
            .chain(&users.active)
            .flat_map(source_attributes)
            .chain([users.anchor.clone(), users.user_name.clone()])
            .any(|a| a.eq_ignore_ascii_case("memberOf"));
        Self {
            config,
            registry: SchemaRegistry::core(),
            shape: Shape::of(users),
            target,
            held: None,
            settled: Vec::new(),
            per_call: 2 * config.connection.page_size as usize,
            enabled: !(config.kind == ServerKind::ActiveDirectory && reads_member_of),
        }
    }

    /// Settles the first users of `users` (the whole search's, read so far, in order) not
    /// settled yet, at most two pages of them; nothing until the target's users are known.
    pub(crate) fn settle(&mut self, users: &[Entry]) {
        if !self.enabled {
            return;
        }
        let held = match &self.held {
            Some(held) => held,
            None => {
                let Some(current) = (self.target)() else {
                    return;
                };
                self.held.insert(held_by_anchor(current))
            }
        };
        let Some(rt) = self.registry.resource_type("User") else {
            return;
        };
        let from = self.settled.len().min(users.len());
        let to = users.len().min(from + self.per_call);
        self.settled.extend(users[from..to].iter().map(|entry| {
            match desired_user(self.config, rt, self.shape.as_ref(), entry, held) {
                Ok(d) => match d.standing {
                    Standing::Unchanged => Some(Early::Unchanged {
                        user_name: d.input.name,
                        active: d.input.active,
                    }),
                    Standing::New => Some(Early::New(Box::new(d.input))),
                    Standing::Held | Standing::Differs(..) => None,
                },
                Err(why) => Some(Early::Problem(why)),
            }
        }));
    }

    /// What was settled, for [`super::plan_settled`].
    pub(crate) fn finish(self) -> Settled {
        Settled(self.settled)
    }
}
