fn main() -> anyhow::Result<()> {
    service_host::run_main(&webshop::SPEC, webshop::build)
}
