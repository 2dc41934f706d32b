fn main() -> anyhow::Result<()> {
    service_host::run_main(&cart::SPEC, cart::build)
}
