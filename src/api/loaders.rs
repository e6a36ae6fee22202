//! Batched reads for one request: every field of every user (or group) on a page asks its
//! loader, and the loader answers them all with one statement per kind (no N+1).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use crate::store::read::{self, DirectoryView, GroupView, StateView, UserView};
use crate::store::{Store, StoreError};

pub struct Loaders {
    pub store: Store,
}

/// Loader errors must be `Clone`; the message is what reaches the client.
#[derive(Clone, Debug)]
pub struct LoadError(pub Arc<StoreError>);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<StoreError> for LoadError {
    fn from(e: StoreError) -> Self {
        LoadError(Arc::new(e))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey(pub i64);
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupKey(pub i64);
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatesKey(pub i64);
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembershipsKey(pub i64);
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeatsKey;
/// A group's display name, for messages (lighter than [`GroupKey`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupNameKey(pub i64);
/// A user's principal name, for messages.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserNameKey(pub i64);
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirectoryKey;

fn ids<K: Copy>(keys: &[K], id: impl Fn(K) -> i64) -> Vec<i64> {
    keys.iter().map(|k| id(*k)).collect()
}

impl Loader<UserKey> for Loaders {
    type Value = UserView;
    type Error = LoadError;

    async fn load(&self, keys: &[UserKey]) -> Result<HashMap<UserKey, UserView>, LoadError> {
        let ids = ids(keys, |k| k.0);
        let users = self.store.read(move |c| read::users(c, &ids)).await?;
        Ok(users.into_iter().map(|(k, v)| (UserKey(k), v)).collect())
    }
}

impl Loader<GroupKey> for Loaders {
    type Value = GroupView;
    type Error = LoadError;

    async fn load(&self, keys: &[GroupKey]) -> Result<HashMap<GroupKey, GroupView>, LoadError> {
        let ids = ids(keys, |k| k.0);
        let groups = self.store.read(move |c| read::groups(c, &ids)).await?;
        Ok(groups.into_iter().map(|(k, v)| (GroupKey(k), v)).collect())
    }
}

impl Loader<StatesKey> for Loaders {
    type Value = Vec<StateView>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[StatesKey],
    ) -> Result<HashMap<StatesKey, Vec<StateView>>, LoadError> {
        let ids = ids(keys, |k| k.0);
        let states = self.store.read(move |c| read::states(c, &ids)).await?;
        // A user with no assignment at all has an empty list, not a missing one.
        Ok(keys
            .iter()
            .map(|k| (*k, states.get(&k.0).cloned().unwrap_or_default()))
            .collect())
    }
}

impl Loader<MembershipsKey> for Loaders {
    type Value = Vec<i64>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[MembershipsKey],
    ) -> Result<HashMap<MembershipsKey, Vec<i64>>, LoadError> {
        let ids = ids(keys, |k| k.0);
        let groups = self.store.read(move |c| read::memberships(c, &ids)).await?;
        Ok(keys
            .iter()
            .map(|k| (*k, groups.get(&k.0).cloned().unwrap_or_default()))
            .collect())
    }
}

impl Loader<SeatsKey> for Loaders {
    type Value = HashMap<String, (i64, i64)>;
    type Error = LoadError;

    async fn load(
        &self,
        _: &[SeatsKey],
    ) -> Result<HashMap<SeatsKey, HashMap<String, (i64, i64)>>, LoadError> {
        let seats = self.store.read(read::seats).await?;
        Ok(HashMap::from([(SeatsKey, seats)]))
    }
}

impl Loader<DirectoryKey> for Loaders {
    type Value = Arc<DirectoryView>;
    type Error = LoadError;

    async fn load(
        &self,
        _: &[DirectoryKey],
    ) -> Result<HashMap<DirectoryKey, Arc<DirectoryView>>, LoadError> {
        let directory = self.store.read(read::directory).await?;
        Ok(HashMap::from([(DirectoryKey, Arc::new(directory))]))
    }
}

impl Loader<GroupNameKey> for Loaders {
    type Value = String;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[GroupNameKey],
    ) -> Result<HashMap<GroupNameKey, String>, LoadError> {
        let ids = ids(keys, |k| k.0);
        let (groups, _) = self.store.read(move |c| read::names(c, &ids, &[])).await?;
        Ok(groups
            .into_iter()
            .map(|(k, v)| (GroupNameKey(k), v))
            .collect())
    }
}

impl Loader<UserNameKey> for Loaders {
    type Value = String;
    type Error = LoadError;

    async fn load(&self, keys: &[UserNameKey]) -> Result<HashMap<UserNameKey, String>, LoadError> {
        let ids = ids(keys, |k| k.0);
        let (_, users) = self.store.read(move |c| read::names(c, &[], &ids)).await?;
        Ok(users
            .into_iter()
            .map(|(k, v)| (UserNameKey(k), v))
            .collect())
    }
}

/// Empties a request's caches (one line per key type above), after a write of that request.
pub fn forget(loader: &super::RequestLoader) {
    loader.clear::<UserKey>();
    loader.clear::<GroupKey>();
    loader.clear::<StatesKey>();
    loader.clear::<MembershipsKey>();
    loader.clear::<SeatsKey>();
    loader.clear::<GroupNameKey>();
    loader.clear::<UserNameKey>();
    loader.clear::<DirectoryKey>();
}
