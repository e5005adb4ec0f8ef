fn main() {
    std::process::exit(oxbake::main_entry());
}
