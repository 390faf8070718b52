//! The Lambda function's binary (`provided.al2023` runs `bootstrap`): all of
//! it is the library's Lambda adapter.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tickbridge::lambda::run().await
}
