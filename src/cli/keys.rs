//! `gmfuse keys create --tenant NAME | list | revoke ID`: API keys in the configured database.
//! `create` prints the new key once (only its sha256 is stored).

use clap::{Args, Subcommand};
use uuid::Uuid;

use crate::config::Config;
use crate::store;

/// Manage API keys.
#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key for a tenant and print it (once).
    Create {
        /// The tenant the key acts as: 1-64 characters of a-z, 0-9, `-`, `_`, `.`.
        #[arg(long)]
        tenant: String,
    },
    /// List the keys: id, tenant, prefix, created, revoked.
    List,
    /// Revoke a key by id; requests with it get 401 from then on.
    Revoke {
        /// The key's id (from `gmfuse keys list`).
        id: Uuid,
    },
}

/// Run a `keys` subcommand.
///
/// # Errors
/// An unusable database, a bad tenant name, or an unknown key id.
pub async fn run(args: KeysArgs) -> anyhow::Result<()> {
    let db = store::open_db(&args.config).await?;
    db.migrate().await?;
    let result = match args.command {
        KeysCommand::Create { tenant } => {
            anyhow::ensure!(
                crate::auth::valid_tenant(&tenant),
                "tenant `{tenant}` must be 1-64 characters of a-z, 0-9, `-`, `_` or `.`"
            );
            let key = crate::auth::generate().map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
            let record = db.insert_key(&tenant, &key.prefix, &key.sha256).await?;
            println!("{}", key.secret);
            eprintln!(
                "key {} for tenant `{tenant}` created; it is shown only this once",
                record.id
            );
            Ok(())
        }
        KeysCommand::List => {
            println!(
                "{:<36}  {:<20}  {:<12}  {:<25}  revoked",
                "id", "tenant", "prefix", "created"
            );
            for k in db.list_keys().await? {
                let revoked = k
                    .revoked_at
                    .map_or_else(|| "-".to_string(), |t| t.to_rfc3339());
                println!(
                    "{:<36}  {:<20}  {:<12}  {:<25}  {revoked}",
                    k.id,
                    k.tenant,
                    k.prefix,
                    k.created_at.to_rfc3339()
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            if db.revoke_key(id).await? {
                eprintln!("key {id} revoked");
                Ok(())
            } else {
                Err(anyhow::anyhow!("no active key {id}"))
            }
        }
    };
    db.close().await;
    result
}
