//! SMART v2 system scopes (`system/Observation.rs`): parsing what a client requests, and the set
//! of scopes a token grants, which the server consults on every request.
//!
//! Only the `system/` context and SMART v2 permission strings are understood: a non-empty
//! subsequence of `cruds`, in that order. Requested scopes this server does not understand
//! (`patient/…`, `user/…`, SMART v1 `.read`, granular `?category=…`, `openid`, …) are not errors:
//! RFC 6749 §3.3 lets a server grant less than asked, and the token response says what was
//! granted.

use std::fmt;

/// One SMART v2 permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `c`: create.
    Create,
    /// `r`: read (read, vread, history of an instance).
    Read,
    /// `u`: update (update, patch).
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: search (type and system search, history of a type).
    Search,
}

impl Permission {
    const ORDER: [(Permission, char); 5] = [
        (Permission::Create, 'c'),
        (Permission::Read, 'r'),
        (Permission::Update, 'u'),
        (Permission::Delete, 'd'),
        (Permission::Search, 's'),
    ];

    fn bit(self) -> u8 {
        match self {
            Permission::Create => 1,
            Permission::Read => 2,
            Permission::Update => 4,
            Permission::Delete => 8,
            Permission::Search => 16,
        }
    }
}

/// A set of [`Permission`]s, written as a SMART v2 permission string (`cruds`, `rs`, …).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    /// No permission.
    pub const NONE: Permissions = Permissions(0);
    /// `rs`.
    pub const RS: Permissions = Permissions(2 | 16);
    /// `crs`.
    pub const CRS: Permissions = Permissions(1 | 2 | 16);
    /// `cud`: every write.
    pub const CUD: Permissions = Permissions(1 | 4 | 8);
    /// `cruds`: everything.
    pub const CRUDS: Permissions = Permissions(31);

    /// Parses a SMART v2 permission string: a non-empty subsequence of `cruds`, in that order.
    pub fn parse(text: &str) -> Option<Permissions> {
        let mut bits = 0u8;
        let mut order = Permission::ORDER.iter();
        for letter in text.chars() {
            // Each letter must come after the previous one in `cruds`: `rc` and `rr` are invalid.
            let (permission, _) = order.by_ref().find(|(_, known)| *known == letter)?;
            bits |= permission.bit();
        }
        (bits != 0).then_some(Permissions(bits))
    }

    /// Whether `permission` is in the set.
    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// The permissions in both sets.
    pub fn intersect(self, other: Permissions) -> Permissions {
        Permissions(self.0 & other.0)
    }

    /// The permissions in either set.
    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (permission, letter) in Permission::ORDER {
            if self.contains(permission) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permissions({self})")
    }
}

/// A requested `system/` scope: a resource type (or `*`) and permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedScope {
    /// The resource type, or `*` for every type.
    pub resource_type: String,
    /// The permissions asked for.
    pub permissions: Permissions,
}

/// Parses a `scope` parameter: the SMART v2 `system/` scopes it holds, in order. Everything else
/// is left out (and so not granted).
pub fn parse_requested(scope: &str) -> Vec<RequestedScope> {
    scope
        .split(' ')
        .filter_map(|token| {
            let rest = token.strip_prefix("system/")?;
            let (resource_type, permissions) = rest.split_once('.')?;
            let valid_type = resource_type == "*"
                || (resource_type.starts_with(|c: char| c.is_ascii_uppercase())
                    && resource_type.chars().all(|c| c.is_ascii_alphanumeric()));
            if !valid_type {
                return None;
            }
            Some(RequestedScope {
                resource_type: resource_type.to_owned(),
                permissions: Permissions::parse(permissions)?,
            })
        })
        .collect()
}

/// The scopes a token grants: per resource type, the permissions. Every type appears at most
/// once; the order is the policy table's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes {
    grants: Vec<(String, Permissions)>,
}

impl Scopes {
    pub(crate) fn from_grants(grants: Vec<(String, Permissions)>) -> Self {
        Scopes { grants }
    }

    /// Whether the token allows `permission` on `resource_type`.
    pub fn allows(&self, resource_type: &str, permission: Permission) -> bool {
        self.permissions(resource_type).contains(permission)
    }

    /// The permissions on `resource_type` (empty when it is not granted).
    pub fn permissions(&self, resource_type: &str) -> Permissions {
        self.grants
            .iter()
            .find(|(granted, _)| granted == resource_type)
            .map_or(Permissions::NONE, |(_, permissions)| *permissions)
    }

    /// The granted resource types with their permissions.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Permissions)> {
        self.grants
            .iter()
            .map(|(resource_type, permissions)| (resource_type.as_str(), *permissions))
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// Reads the `scope` claim of one of our access tokens back: only `system/Type.perms`
    /// scopes, each type once. `None` for anything else.
    pub(crate) fn parse_granted(scope: &str) -> Option<Scopes> {
        let mut grants: Vec<(String, Permissions)> = Vec::new();
        for token in scope.split(' ') {
            let rest = token.strip_prefix("system/")?;
            let (resource_type, permissions) = rest.split_once('.')?;
            if resource_type == "*" || grants.iter().any(|(known, _)| known == resource_type) {
                return None;
            }
            grants.push((resource_type.to_owned(), Permissions::parse(permissions)?));
        }
        Some(Scopes { grants })
    }
}

impl fmt::Display for Scopes {
    /// The space-separated SMART v2 scopes: the token response's and the token's `scope`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (resource_type, permissions)) in self.grants.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            write!(f, "system/{resource_type}.{permissions}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
