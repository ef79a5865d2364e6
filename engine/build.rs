//! Rebuilds the engine when a migration is added or changed: `sqlx::migrate!`
//! embeds the migration files, and cargo would not notice them otherwise.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
