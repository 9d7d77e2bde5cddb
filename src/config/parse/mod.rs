//! Text → typed model, one parser per file. Each reports every problem it can
//! find in one pass and keeps going; cross-file facts are left to `validate`.

mod flows;
mod lexer;
mod lvs;
mod network;

pub use flows::parse as parse_flows;
pub use lvs::parse as parse_lvs;
pub use network::parse as parse_network;

use std::borrow::Cow;

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
/// Most are the parser's own words or the file's, so they are borrowed, not copied.
#[derive(Debug, Default)]
struct Seen<'k>(Vec<(Cow<'k, str>, u32)>);

impl<'k> Seen<'k> {
    fn once(&mut self, keyword: &'k str, token: Token<'_>) -> Result<(), Problem> {
        self.once_named(keyword, token.loc)
    }

    fn once_named(&mut self, setting: impl Into<Cow<'k, str>>, loc: Loc) -> Result<(), Problem> {
        let setting = setting.into();
        if let Some((_, line)) = self.0.iter().find(|(s, _)| *s == setting) {
            return Err(Problem::new(
                loc,
                format!("`{setting}` is already set on line {line}"),
            ));
        }
        self.0.push((setting, loc.line));
        Ok(())
    }
}
