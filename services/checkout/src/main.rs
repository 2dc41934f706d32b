fn main() -> anyhow::Result<()> {
    service_host::run_main(&checkout::SPEC, checkout::build)
}
