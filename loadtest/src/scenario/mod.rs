pub fn main(_a: ScenarioArgs) -> anyhow::Result<()> {
    Ok(())
}
#[derive(clap::Args)]
pub struct ScenarioArgs {
    name: String,
}
