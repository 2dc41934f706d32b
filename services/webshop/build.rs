//! Rebuilds this service when a file in its migrations folder is added or
//! changed: `sqlx::migrate!` embeds the folder at compile time, but cargo
//! does not know to watch it, and a new file alone changes no Rust source.

fn main() {
    let service = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    println!("cargo:rerun-if-changed=../../migrations/{service}");
}
