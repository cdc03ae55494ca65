//! The machinery behind every OpenBMC string enum.

use std::fmt;

/// A value that is not one of an enum's OpenBMC strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a value of {enum_name}")]
pub struct UnknownEnumValue {
    /// The enum's full D-Bus name, e.g. `xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI`.
    pub enum_name: &'static str,
    /// What was offered.
    pub value: String,
}

/// An OpenBMC enum that travels on D-Bus as the string `<interface>.<Enum>.<Value>`.
pub trait DbusEnum: Sized + Copy + Eq + fmt::Debug + 'static {
    /// `<interface>.<Enum>`, the prefix of every value.
    const PREFIX: &'static str;
    /// Every value, in the order upstream declares them.
    const ALL: &'static [Self];
    /// The bare value name, e.g. `S2_D2`.
    fn short(self) -> &'static str;
    /// The full string that goes on the bus.
    fn dbus_str(self) -> String {
        format!("{}.{}", Self::PREFIX, self.short())
    }
    /// Parse the full string; the bare name is not accepted, as sdbusplus does not accept it.
    fn from_dbus_str(s: &str) -> Result<Self, UnknownEnumValue> {
        s.strip_prefix(Self::PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|short| Self::from_short(short))
            .ok_or_else(|| UnknownEnumValue {
                enum_name: Self::PREFIX,
                value: s.to_owned(),
            })
    }
    /// Parse the bare value name (used by configuration files).
    fn from_short(short: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.short() == short)
    }
}

/// Declares an OpenBMC string enum: the Rust enum, [`DbusEnum`], serde as the full string and
/// (with the `zbus` feature) the D-Bus signature `s`.
macro_rules! dbus_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident = $prefix:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $short:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $crate::dbus_enum::DbusEnum for $name {
            const PREFIX: &'static str = $prefix;
            const ALL: &'static [Self] = &[ $( Self::$variant ),+ ];
            fn short(self) -> &'static str {
                match self { $( Self::$variant => $short ),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::dbus_enum::DbusEnum::short(*self))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::dbus_enum::UnknownEnumValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <Self as $crate::dbus_enum::DbusEnum>::from_dbus_str(s)
            }
        }

        // Expanded in this crate, so this is openbmc-vocab's own `zbus` feature.
        #[cfg(feature = "zbus")]
        impl ::zbus::Type for $name {
            const SIGNATURE: &'static ::zbus::Signature = &::zbus::Signature::Str;
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&$crate::dbus_enum::DbusEnum::dbus_str(*self))
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                <Self as $crate::dbus_enum::DbusEnum>::from_dbus_str(&s)
                    .map_err(::serde::de::Error::custom)
            }
        }
    };
}
