//! Generated code for ANP's protobuf packages (`proto/anp/...`).
#![allow(clippy::all, missing_docs)]

/// Encoded `FileDescriptorSet` of every ANP proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/anp_descriptor.bin"));

pub mod events {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/anp.events.v1.rs"));
    }
}
pub mod sites {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/anp.sites.v1.rs"));
    }
}
pub mod ops {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/anp.ops.v1.rs"));
    }
}
pub mod content {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/anp.content.v1.rs"));
    }
}
pub mod aggregator {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/anp.aggregator.v1.rs"));
    }
}
pub mod archive {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/anp.archive.v1.rs"));
    }
}
pub mod calendar {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/anp.calendar.v1.rs"));
    }
}
