//! Text → typed model, one parser per file. Each reports every problem it can
//! find in one pass and keeps going; cross-file facts are left to `validate`.

mod flows;
mod lexer;
mod lvs;
mod network;

pub use flows::parse as parse_flows;
pub use lvs::parse as parse_lvs;
pub use network::parse as parse_network;

use crate::config::diagnostic::Problem;
use crate::config::model::types::{Loc, Spanned};

use lexer::Token;

/// A name token checked against its type's documented rules.
fn name<T: TryFrom<String, Error = String>>(token: Token<'_>) -> Result<Spanned<T>, Problem> {
    T::try_from(token.text.to_owned())
        .map(|value| Spanned::new(value, token.loc))
        .map_err(|message| Problem::new(token.loc, message))
}

/// Settings that may be written once per section, and the line that wrote each.
#[derive(Debug, Default)]
struct Seen(Vec<(String, u32)>);

impl Seen {
    fn once(&mut self, keyword: &str, token: Token<'_>) -> Result<(), Problem> {
        self.once_named(keyword, token.loc)
    }

    fn once_named(&mut self, setting: &str, loc: Loc) -> Result<(), Problem> {
        if let Some((_, line)) = self.0.iter().find(|(s, _)| s == setting) {
            return Err(Problem::new(
                loc,
                format!("`{setting}` is already set on line {line}"),
            ));
        }
        self.0.push((setting.to_owned(), loc.line));
        Ok(())
    }
}
