//! Outgoing mail of the Open Credit API (verification links), through lettre.
//!
//! By default every message is written as an `.eml` file into a local mail folder, so the
//! service works with no mail server and an operator can read the links; with
//! `opencredit.mail.transport = "smtp"` messages go through the configured SMTP server.

use std::path::PathBuf;

use lettre::message::Mailbox;
use lettre::transport::file::AsyncFileTransport;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::MailConfig;

pub enum Mailer {
    File {
        folder: PathBuf,
        transport: AsyncFileTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
}

impl Mailer {
    pub fn new(config: &MailConfig) -> anyhow::Result<Mailer> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("opencredit.mail.from: {e}"))?;
        Ok(match config.transport.as_str() {
            "smtp" => Mailer::Smtp {
                transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)?
                    .build(),
                from,
            },
            _ => Mailer::File {
                folder: config.folder.clone(),
                transport: AsyncFileTransport::new(&config.folder),
                from,
            },
        })
    }

    /// Whether mail can go out (for `accolade doctor`): the folder can be created, or the SMTP
    /// server answers.
    pub async fn check(&self) -> anyhow::Result<String> {
        match self {
            Mailer::File { folder, .. } => {
                tokio::fs::create_dir_all(folder).await?;
                Ok(format!("written to the folder {}", folder.display()))
            }
            Mailer::Smtp { transport, .. } => {
                if transport.test_connection().await? {
                    Ok("the SMTP server answers".into())
                } else {
                    anyhow::bail!("the SMTP server did not accept a connection")
                }
            }
        }
    }

    /// Sends a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let to: Mailbox = to.parse()?;
        let from = match self {
            Mailer::File { from, .. } | Mailer::Smtp { from, .. } => from.clone(),
        };
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .body(body)?;
        match self {
            Mailer::File {
                folder, transport, ..
            } => {
                tokio::fs::create_dir_all(folder).await?;
                transport.send(message).await?;
            }
            Mailer::Smtp { transport, .. } => {
                transport.send(message).await?;
            }
        }
        Ok(())
    }
}
