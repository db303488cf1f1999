//! Tauri's build step: reads `tauri.conf.json` (a link to the one at the
//! repository root) and the capabilities.

fn main() {
    tauri_build::build();
}
