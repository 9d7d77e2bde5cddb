//! Resolving the IPVS generic netlink family: the generic netlink
//! controller's request and answer, built and read with neli (one message at
//! connect, where neli is not the bottleneck).

use std::fmt;
use std::io::Cursor;

use neli::consts::genl::{CtrlAttr, CtrlCmd};
use neli::consts::nl::{GenlId, NlmF};
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder, NoUserHeader};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::types::GenlBuffer;
use neli::{FromBytesWithInput, ToBytes};

use super::consts::{CTRL_VERSION, FAMILY_NAME};
use crate::kernel::nlwire::{DecodeError, EncodeError, malformed};

/// `CTRL_CMD_GETFAMILY` for the IPVS family, to the generic netlink controller.
pub fn family_request(out: &mut Vec<u8>, seq: u32) -> Result<(), EncodeError> {
    let neli_error = |e: &dyn fmt::Display| EncodeError::new(e);
    let name = NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(CtrlAttr::FamilyName)
                .build()
                .map_err(|e| neli_error(&e))?,
        )
        .nla_payload(FAMILY_NAME)
        .build()
        .map_err(|e| neli_error(&e))?;
    let genl = GenlmsghdrBuilder::<CtrlCmd, CtrlAttr, NoUserHeader>::default()
        .cmd(CtrlCmd::Getfamily)
        .version(CTRL_VERSION)
        .attrs(std::iter::once(name).collect::<GenlBuffer<_, _>>())
        .build()
        .map_err(|e| neli_error(&e))?;
    let message = NlmsghdrBuilder::default()
        .nl_type(GenlId::Ctrl)
        .nl_flags(NlmF::REQUEST | NlmF::ACK)
        .nl_seq(seq)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| neli_error(&e))?;
    let mut bytes = Cursor::new(Vec::new());
    message.to_bytes(&mut bytes).map_err(|e| neli_error(&e))?;
    out.extend_from_slice(bytes.get_ref());
    Ok(())
}

/// The family id in the generic netlink controller's answer.
pub fn parse_family_id(payload: &[u8]) -> Result<u16, DecodeError> {
    let message =
        Genlmsghdr::<u8, CtrlAttr>::from_bytes_with_input(&mut Cursor::new(payload), payload.len())
            .map_err(|e| malformed(format!("the family: {e}")))?;
    message
        .attrs()
        .get_attr_handle()
        .get_attr_payload_as::<u16>(CtrlAttr::FamilyId)
        .map_err(|_| malformed("the family has no CTRL_ATTR_FAMILY_ID"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::samples::{neli_attr, neli_bytes};

    #[test]
    fn the_family_request_and_answer() {
        let mut out = Vec::new();
        family_request(&mut out, 3).unwrap();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &32u32.to_ne_bytes()[..], &0x10u16.to_ne_bytes(), &5u16.to_ne_bytes(),
            &3u32.to_ne_bytes(), &0u32.to_ne_bytes(),
            &[3, 2, 0, 0], // CTRL_CMD_GETFAMILY, version 2
            &9u16.to_ne_bytes(), &2u16.to_ne_bytes(), b"IPVS\0\0\0\0", // CTRL_ATTR_FAMILY_NAME
        ]
        .concat();
        assert_eq!(out, expected);

        let mut answer = vec![1, 2, 0, 0]; // CTRL_CMD_NEWFAMILY
        answer.extend(neli_bytes(neli_attr(2, b"IPVS\0")));
        answer.extend(neli_bytes(neli_attr(1, &33u16.to_ne_bytes())));
        assert_eq!(parse_family_id(&answer), Ok(33));
        assert!(parse_family_id(&answer[..12]).is_err());
    }
}
