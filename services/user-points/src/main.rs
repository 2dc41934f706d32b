fn main() -> anyhow::Result<()> {
    service_host::run_main(&user_points::SPEC, user_points::build)
}
