<?php

namespace App\Events;

use Illuminate\Broadcasting\Channel;
use Illuminate\Broadcasting\EncryptedPrivateChannel;
use Illuminate\Broadcasting\PresenceChannel;
use Illuminate\Broadcasting\PrivateChannel;
use Illuminate\Contracts\Broadcasting\ShouldBroadcastNow;

// (b) One event on a public, a private, a presence and an encrypted private
// channel, with no broadcastAs (its name is the class name) and a
// broadcastWith holding title and message.
class PedidoActualizado implements ShouldBroadcastNow
{
    public function __construct(private int $pedido)
    {
    }

    public function broadcastOn()
    {
        return [
            new Channel('pedidos'),
            new PrivateChannel('orders.' . $this->pedido),
            new PresenceChannel('chat.' . $this->pedido),
            new EncryptedPrivateChannel('billing.' . $this->pedido),
        ];
    }

    public function broadcastWith()
    {
        return [
            'pedido_id' => $this->pedido,
            'estado' => 'enviado',
            'title' => 'Pedido enviado',
            'message' => "Tu pedido #{$this->pedido} está en camino",
        ];
    }
}
