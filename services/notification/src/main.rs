fn main() -> anyhow::Result<()> {
    service_host::run_main(&notification::SPEC, notification::build)
}
