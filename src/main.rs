fn main() {
    std::process::exit(outlyer_agent::cli::main_entry());
}
