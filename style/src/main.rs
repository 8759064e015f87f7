//! Writes `style/latch.css` from the classes the sources use.

fn main() -> std::process::ExitCode {
    let root = style::workspace_root();
    match style::generate_for_workspace(&root) {
        Ok(css) => match std::fs::write(root.join(style::OUTPUT), css) {
            Ok(()) => {
                println!("wrote {}", style::OUTPUT);
                std::process::ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("latch-style: cannot write {}: {error}", style::OUTPUT);
                std::process::ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("latch-style: cannot read the sources: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
