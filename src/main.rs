fn main() {
    std::process::exit(outlyer_agent::agent::main_entry());
}
