//! gzip and brotli encoders for the compressed routes and the gzipped sitemap.

use std::io::{self, Write};

/// gzip-compresses `data`.
pub(crate) fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(data)?;
    enc.finish()
}

/// brotli-compresses `data`.
pub(crate) fn brotli(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data)?;
        w.flush()?;
    }
    Ok(out)
}
