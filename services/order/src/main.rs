fn main() -> anyhow::Result<()> {
    service_host::run_main(&order::SPEC, order::build)
}
