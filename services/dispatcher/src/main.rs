fn main() -> anyhow::Result<()> {
    service_host::run_main(&dispatcher::SPEC, dispatcher::build)
}
