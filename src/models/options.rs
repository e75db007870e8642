//! Family knobs. Every paper family declares its model options once, in its own file, as one struct
//! that is both a clap `Args` group (flags, help) and serde (config keys, checkpoints), and lists it
//! with one line in `models/mod.rs` ([`family_options!`]). The command line flattens the generated
//! `FamilyOptions`, the configuration stores the values as a flat map next to its own keys, and a
//! builder reads its typed options back with `ModelConfig::options`. Nothing outside the family names
//! a knob.
use crate::error::Result;
use crate::input_err;
use serde::de::DeserializeOwned;

/// Declares, from one list of `field: OptionsType` (one line per family), `FamilyOptions` (every
/// family's options flattened, as flags and config keys), `validate_options` (type and value checks
/// of a flat option map) and `option_keys` (the config keys they declare).
macro_rules! family_options {
    ($($field:ident: $ty:ty),* $(,)?) => {
        /// The model options of every family, as flags and as config keys.
        #[derive(Debug, Clone, Default, clap::Args, serde::Serialize)]
        pub struct FamilyOptions {
            $(
                #[command(flatten)]
                #[serde(flatten)]
                pub $field: $ty,
            )*
        }

        /// Checks the types and values of every family's options in `map` (each family ignores the
        /// others' keys); errors name the key and `source`.
        pub fn validate_options(
            map: &serde_json::Map<String, serde_json::Value>,
            source: &str,
        ) -> $crate::error::Result<()> {
            use $crate::models::options::{read, Validate};
            $( read::<$ty>(map, source)?.validate()?; )*
            Ok(())
        }

        /// Config keys of all family options (their clap argument ids, which are the field names).
        pub fn option_keys() -> Vec<String> {
            let cmd = <FamilyOptions as clap::Args>::augment_args(clap::Command::new("options"));
            cmd.get_arguments().map(|a| a.get_id().to_string()).collect()
        }
    };
}
pub(crate) use family_options;

/// A family's options: validated once the map they were read from is known to hold the right types.
pub trait Validate {
    /// Value checks beyond the types (ranges, names); the error names the flag.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Reads one family's typed options from a flat map of option values (other keys are ignored); a
/// wrong type is an input error naming the key and `source`.
pub fn read<T: DeserializeOwned>(map: &serde_json::Map<String, serde_json::Value>, source: &str) -> Result<T> {
    serde_path_to_error::deserialize(serde_json::Value::Object(map.clone()))
        .map_err(|e| input_err!("{source}: setting '{}': {}.", e.path(), e.inner()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn option_keys_are_the_option_field_names() {
        let keys = crate::models::option_keys();
        assert!(keys.contains(&"bank_size".to_string()) && keys.contains(&"sampler".to_string()), "{keys:?}");
    }
}
