//! `earshot`, the desktop app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    earshot_desktop::run();
}
