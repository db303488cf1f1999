//! The smallest Tauri 2 app: the floor for window start-up on this machine.

fn main() {
    tauri::Builder::default().run(tauri::generate_context!()).expect("the window could not start");
}
