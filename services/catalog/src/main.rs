fn main() -> anyhow::Result<()> {
    service_host::run_main(&catalog::SPEC, catalog::build)
}
