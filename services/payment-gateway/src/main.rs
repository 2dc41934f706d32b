fn main() -> anyhow::Result<()> {
    service_host::run_main(&payment_gateway::SPEC, payment_gateway::build)
}
