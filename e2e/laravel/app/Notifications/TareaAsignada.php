<?php

namespace App\Notifications;

use Illuminate\Notifications\Messages\BroadcastMessage;
use Illuminate\Notifications\Notification;

// (e) A notification sent over the broadcast channel: Laravel publishes
// Illuminate\Notifications\Events\BroadcastNotificationCreated on
// private-App.Models.User.{id} with toBroadcast's data plus id (the
// notification's UUID) and type (the class name).
class TareaAsignada extends Notification
{
    public function __construct(private int $tarea, private string $titulo)
    {
    }

    public function via($notifiable)
    {
        return ['broadcast'];
    }

    public function toBroadcast($notifiable)
    {
        return new BroadcastMessage([
            'tarea_id' => $this->tarea,
            'title' => 'Nueva Tarea Asignada',
            'message' => $this->titulo,
        ]);
    }

    public function toArray($notifiable)
    {
        return ['tarea_id' => $this->tarea];
    }
}
