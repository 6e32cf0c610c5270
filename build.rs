//! `init` embeds these directories with include_dir; cargo does not see a proc macro read
//! them, so say when the binary must be rebuilt.

fn main() {
    for dir in ["scaffold", "profiles", "terraform/existing"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
