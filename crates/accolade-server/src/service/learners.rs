//! Learners as events made them known (username, LMS id, name, email). Their progress on
//! templates is `service::progress`.

use accolade_store::{Learner, Page, Paged, Store, StoreError};

pub async fn list(store: &dyn Store, page: Page) -> Result<Paged<Learner>, StoreError> {
    store.list_learners(page).await
}

pub async fn get(store: &dyn Store, username: &str) -> Result<Learner, StoreError> {
    store.get_learner(username).await
}
